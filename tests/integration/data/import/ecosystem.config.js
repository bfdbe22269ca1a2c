// pm2's ecosystem file as its documentation shows it (the "Environment
// variables" and "Cluster mode" examples of the Application Declaration
// page), plus the second app and the deploy section of the template
// `pm2 ecosystem` writes.
module.exports = {
  apps : [{
    name      : "app",
    script    : "./app.js",
    instances : "max",
    exec_mode : "cluster",
    env: {
      NODE_ENV: "development",
    },
    env_production: {
      NODE_ENV: "production",
    }
  }, {
    name      : "WEB",
    script    : "web.js"
  }],

  deploy : {
    production : {
      user : "node",
      host : "212.83.163.1",
      ref  : "origin/master",
      repo : "git@github.com:repo.git",
      path : "/var/www/production",
      "post-deploy" : "npm install && pm2 startOrRestart ecosystem.config.js --env production"
    }
  }
}
